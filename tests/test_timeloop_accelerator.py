"""Timeloop architectures as an experiment's fixed hardware and as a sweep's accelerator axis."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from jaqmoo.cli import main
from jaqmoo.errors import JaqmooError
from jaqmoo.experiment import prepare_experiment, run_experiment
from jaqmoo.experiment.spec import load_spec, parse_spec
from jaqmoo.report import load_run
from jaqmoo.sweep.outputs import _run_row
from jaqmoo.sweep.spec import load_sweep_spec

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "timeloop_reference" / "mapper-eyeriss-like-conv"  # Timeloop output folder with its ERT
FORK = DATA / "timeloop_quant" / "mobilenet-l3-eyeriss-16bit_int-w4-a8"  # fork dialect, no ERT
SPEC = {
    "name": "tl",
    "model": {"name": "simple_cnn"},
    "dataset": {"name": "digits"},
    "accelerator": {"timeloop": "../hw/eyeriss-tl"},
    "quantization": {"weight_bits": [4, 6, 8], "act_bits": [4, 6, 8]},
    "objectives": ["accuracy", "energy", "memory"],
    "search": {"population": 8, "generations": 2, "batch_size": 4},
}


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """tmp/hw/eyeriss-tl (a copy of the reference folder), tmp/specs/tl.yaml; cwd elsewhere."""
    shutil.copytree(REFERENCE, tmp_path / "hw" / "eyeriss-tl")
    (tmp_path / "specs").mkdir()
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path


def _write(layout, **changes):
    data = json.loads(json.dumps(SPEC))
    data.update(changes)
    path = layout / "specs" / "tl.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_path_is_read_from_the_spec_files_folder(layout):
    spec = load_spec(_write(layout))
    assert spec.accelerator.timeloop == str((layout / "hw" / "eyeriss-tl").resolve())
    assert spec.accelerator.template is None and spec.accelerator.label == "timeloop:eyeriss-tl"
    prep = prepare_experiment(spec, out=layout / "run")
    assert prep.hardware_genes == () and prep.hardware_fixed == {}
    accel = prep.template.build()
    assert [lvl.name for lvl in accel.levels][:2] == ["DRAM", "shared_glb"]
    assert accel.energy_source.startswith("ERT ") and "timeloop-mapper.ERT.yaml" in accel.energy_source
    assert prep.template.technology_nm == 32  # the architecture's components say 32nm
    with pytest.raises(JaqmooError, match="unknown parameter 'pe_x'"):
        prep.template.build(pe_x=4)


@pytest.mark.parametrize("accelerator, message", [
    ({"timeloop": "../hw/missing"}, r"accelerator\.timeloop: .*missing does not exist .*spec file's folder"),
    ({"timeloop": "../hw/eyeriss-tl", "search": ["pe_x"]}, r"accelerator\.search: a Timeloop architecture .*fixed hardware"),
    ({"timeloop": "../hw/eyeriss-tl", "search": "all"}, r"accelerator\.search: .*no parameters"),
    ({"timeloop": "../hw/eyeriss-tl", "fixed": {"pe_x": 4}}, r"accelerator\.fixed: .*fixed hardware"),
    ({"timeloop": "../hw/eyeriss-tl", "template": "eyeriss"}, r"accelerator: give template .* or timeloop"),
    ({"timeloop": 3}, r"accelerator\.timeloop: expected the path"),
    ({"fixed": {"pe_x": 4}}, r"accelerator\.template .* or accelerator\.timeloop .* is required"),
])
def test_bad_timeloop_accelerators_name_the_field(layout, accelerator, message):
    with pytest.raises(JaqmooError, match=message):
        load_spec(_write(layout, accelerator=accelerator))


def test_folder_without_architecture_or_energies_is_a_clear_error(layout):
    empty = layout / "hw" / "empty"
    empty.mkdir()
    (empty / "notes.yaml").write_text("problem: {}\n")
    with pytest.raises(JaqmooError, match=r"accelerator\.timeloop: .*no Timeloop input here .*architecture"):
        prepare_experiment(load_spec(_write(layout, accelerator={"timeloop": "../hw/empty"})), out=layout / "r")
    (layout / "hw" / "arch.yaml").write_text("problem: {}\n")
    with pytest.raises(JaqmooError, match=r"accelerator\.timeloop: .*arch.yaml has no 'architecture:' section"):
        prepare_experiment(load_spec(_write(layout, accelerator={"timeloop": "../hw/arch.yaml"})), out=layout / "r")
    # the fork's folder names no ERT and its compound components defeat the built-in tables:
    # an error asking for the ERT, never a search on energies of 0
    with pytest.raises(JaqmooError, match=r"accelerator\.timeloop: .*no Accelergy ERT .*put the ERT"):
        prepare_experiment(parse_spec({**SPEC, "accelerator": {"timeloop": str(FORK)}}), out=layout / "r")


def test_folder_without_ert_uses_the_builtin_tables_and_says_so(layout):
    spec = parse_spec({**SPEC, "accelerator": {"timeloop": str(DATA / "designs" / "eyeriss_like")}})
    accel = prepare_experiment(spec, out=layout / "r").template.build()
    assert accel.energy_source.startswith("built-in 32nm table (no ERT in ") and accel.levels[1].name == "shared_glb"


def test_run_on_a_timeloop_folder_gives_a_front(fake_accuracy, layout, monkeypatch):
    result = run_experiment(_write(layout), out=layout / "run", progress=False, plots=False)
    front = pd.read_csv(layout / "run" / "front.csv")
    assert len(front) >= 1 and front["feasible"].all() and (front["energy_pj"] > 0).all()
    assert not [c for c in front.columns if c.startswith("hw.")]  # fixed hardware: no genes
    assert front["map.features.0"].str.contains("shared_glb").all()  # mapped by jaqmoo's mapper
    meta = result.run.meta
    assert meta["template"] == "timeloop:eyeriss-tl" and meta["energy_source"].startswith("ERT ")
    row = _run_row(load_run(layout / "run"), 0.5)  # the sweep summary's columns
    assert row["energy_source"].startswith("ERT ") and "eyeriss-tl" in row["energy_source"]
    assert row["technology_nm"] == 32 and row["template"] == "timeloop:eyeriss-tl"
    assert (layout / "run" / "report.html").is_file()
    from jaqmoo.reporting.breakdown import CostBreakdown

    run = load_run(layout / "run")  # `jaqmoo report` rebuilds the design from meta.json
    breakdown = CostBreakdown.from_meta(run.meta, run.evaluations)
    genes = [int(v) for v in str(front["genes"].iloc[0]).split()]
    assert breakdown.network_cost(genes).energy_pj == pytest.approx(float(front["energy_pj"].iloc[0]))


def test_sweep_axis_takes_templates_and_timeloop_folders(layout, capsys):
    sweep = {"name": "mix", "base": "tl.yaml",
             "axes": {"accelerator": ["eyeriss", {"timeloop": "../hw/eyeriss-tl"}], "seed": [0, 1]},
             "output": {"dir": str(layout / "out")}}
    _write(layout, accelerator={"template": "eyeriss", "search": ["pe_x"]})
    path = layout / "specs" / "mix.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    plan = load_sweep_spec(path)
    assert [r.name for r in plan.runs] == ["eyeriss-s0", "eyeriss-s1", "eyeriss-tl-s0", "eyeriss-tl-s1"]
    specs = {r.name: r.parsed("t") for r in plan.runs}
    assert specs["eyeriss-s0"].accelerator.search == (("pe_x", ()),)
    tl = specs["eyeriss-tl-s1"].accelerator
    assert tl.timeloop == str((layout / "hw" / "eyeriss-tl").resolve()) and tl.search == ()
    assert {r.spec["mapping"]["cache_dir"] for r in plan.runs} == {str(layout / "out" / "mapper-cache")}
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 runs" in out and "eyeriss-s1" in out and "eyeriss-tl-s0" in out
    assert "accelerator=timeloop:eyeriss-tl" in out and not (layout / "out").exists()
    assert f"mapper warm-up cache (shared by runs on the same layers and hardware space): {layout / 'out'}" in out


def test_sweep_base_on_a_timeloop_folder_and_a_template_axis(layout):
    _write(layout, mapping=None)  # base: the Timeloop folder, relative to the base file
    (layout / "specs" / "sub").mkdir()
    path = layout / "specs" / "sub" / "mix.yaml"
    path.write_text(yaml.safe_dump({"name": "m", "base": "../tl.yaml",
                                    "axes": {"accelerator": ["simba", {"timeloop": "../../hw/eyeriss-tl"}]}}))
    plan = load_sweep_spec(path, out_dir=layout / "o")
    simba, tl = (r.parsed("t").accelerator for r in plan.runs)
    assert simba.template == "simba" and simba.timeloop is None
    assert tl.timeloop == str((layout / "hw" / "eyeriss-tl").resolve())
    assert plan.runs[0].spec["mapping"] == {"cache_dir": str(layout / "o" / "mapper-cache")}
