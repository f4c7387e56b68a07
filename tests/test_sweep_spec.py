"""Sweep specs: expansion into runs, shared supernets, validation messages, --dry-run."""

from __future__ import annotations

import pytest
import yaml

from jaqmoo.cli import main
from jaqmoo.errors import JaqmooError
from jaqmoo.sweep.spec import expand_sweep, load_sweep_spec

BASE = {
    "name": "tiny",
    "model": {"name": "simple_cnn"},
    "dataset": {"name": "digits"},
    "accelerator": {"template": "eyeriss"},
    "quantization": {"weight_bits": [2, 4, 8], "act_bits": [4, 8]},
    "objectives": ["accuracy", "energy"],
    "search": {"population": 8, "generations": 2, "seed_bits": [8, 4]},
}


def _sweep(**changes):
    data = {"name": "sw", "base": yaml.safe_load(yaml.safe_dump(BASE)),
            "axes": {"model": ["simple_cnn", "mobilenet_v1"], "accelerator": ["eyeriss", "simba"], "seed": [0, 1]}}
    data.update(changes)
    return data


def test_cross_product_names_and_shared_supernets(tmp_path):
    plan = expand_sweep(_sweep(), out_dir=tmp_path / "sw")
    assert len(plan.runs) == 8
    assert [r.name for r in plan.runs][:3] == ["simple_cnn-eyeriss-s0", "simple_cnn-eyeriss-s1", "simple_cnn-simba-s0"]
    # one supernet per model: neither the accelerator nor the search seed changes it
    assert len(plan.supernets) == 2
    by_key = {}
    for r in plan.runs:
        by_key.setdefault(r.supernet, set()).add(r.values["accelerator"])
        assert r.spec["accuracy"]["checkpoint"] == plan.supernets[r.supernet]
        assert r.spec["accuracy"]["checkpoint"].startswith(str(tmp_path / "sw" / "supernets"))
        spec = r.parsed(plan.source)
        assert (spec.model.name, spec.accelerator.template, spec.seed) == (
            r.values["model"], r.values["accelerator"], r.values["seed"])
    assert all(v == {"eyeriss", "simba"} for v in by_key.values())
    assert {r.supernet for r in plan.runs if r.values["model"] == "simple_cnn"} == {plan.runs[0].supernet}
    assert plan.grid == {"rows": "model", "cols": "accelerator"}


def test_dotted_keys_combinations_and_set(tmp_path):
    plan = expand_sweep(_sweep(axes=None, combinations=[
        {"accelerator": "eyeriss", "quantization.weight_bits": [4, 8]},
        {"accelerator": "simba", "quantization.weight_bits": [2, 4, 8], "search.population": 12}],
        set={"search.generations": 3}), out_dir=tmp_path)
    assert [r.name for r in plan.runs] == ["eyeriss-weight_bits=4.8", "simba-weight_bits=2.4.8-population=12"]
    a, b = (r.parsed("x") for r in plan.runs)
    assert a.quantization.weight_bits == (4, 8) and b.quantization.weight_bits == (2, 4, 8)
    assert b.search.population == 12 and a.search.population == 8
    assert a.search.generations == b.search.generations == 3
    # different bits -> different supernets
    assert plan.runs[0].supernet != plan.runs[1].supernet


def test_checkpoint_template_is_formatted_and_clash_is_an_error(tmp_path):
    base = yaml.safe_load(yaml.safe_dump(BASE))
    base["accuracy"] = {"checkpoint": str(tmp_path / "cache" / "{model}-s{seed}.pt")}
    plan = expand_sweep(_sweep(base=base), out_dir=tmp_path)
    assert sorted(plan.supernets) == ["mobilenet_v1-s0", "mobilenet_v1-s1", "simple_cnn-s0", "simple_cnn-s1"]
    assert sorted(set(plan.supernets.values())) == sorted(
        str(tmp_path / "cache" / f"{m}-s{s}.pt") for m in ("simple_cnn", "mobilenet_v1") for s in (0, 1))
    base["accuracy"] = {"checkpoint": str(tmp_path / "one.pt")}
    with pytest.raises(JaqmooError, match=r"shared by different supernets.*\{model\}"):
        expand_sweep(_sweep(base=base), out_dir=tmp_path)


@pytest.mark.parametrize("changes, message", [
    ({"axes": {"modle": ["simple_cnn"]}}, r"'modle' is not an experiment spec key; did you mean 'model'"),
    ({"axes": {"model": []}}, r"axes.model: expected a non-empty list"),
    ({"axes": {"accelerator": ["eyeris"]}}, r"accelerator.template: unknown template 'eyeris'; did you mean 'eyeriss'"),
    ({"axes": {"search.population": [2]}}, r"\[run population=2\].*search.population: 2 is out of range"),
    ({"grid": {"rows": "seeds"}}, r"grid.rows: 'seeds' is not an axis"),
    ({"acuracy_tolerance": 0.1}, r"unknown key 'acuracy_tolerance'; did you mean 'accuracy_tolerance'"),
    ({"combinations": [{"seed": 0}]}, r"give 'axes' or 'combinations', not both"),
    ({"axes": {"seed": [0, 0]}}, r"two combinations give the same run 's0'"),
])
def test_bad_sweeps_name_the_field(tmp_path, changes, message):
    with pytest.raises(JaqmooError, match=message):
        expand_sweep(_sweep(**changes), out_dir=tmp_path)


def test_base_path_relative_to_the_sweep_file_and_dry_run(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    sweep = _sweep(base="base.yaml", output={"dir": str(tmp_path / "out")})
    path = tmp_path / "sw.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    assert load_sweep_spec(path).output_dir == str(tmp_path / "out")
    assert main(["sweep", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "8 runs, 2 supernet(s)" in out and "mobilenet_v1-simba-s1" in out and "(4 runs)" in out
    assert not (tmp_path / "out").exists()  # a dry run writes nothing


def test_shipped_sweeps_expand():
    quick = load_sweep_spec("problems/sweep-quick.yaml")
    assert len(quick.runs) == 8 and {r.parsed("q").dataset.name for r in quick.runs} == {"digits"}
    seeds = load_sweep_spec("problems/sweep-seeds.yaml")
    specs = [r.parsed("s") for r in seeds.runs]
    assert sorted((s.model.name, s.accelerator.template) for s in specs) == [
        ("mobilenet_v1", "eyeriss"), ("mobilenet_v1", "simba"), ("mobilenet_v2", "eyeriss"), ("mobilenet_v2", "simba")]
    # like with like: every accelerator at one technology node
    assert len({dict(s.accelerator.fixed).get("technology") for s in specs}) == 1
    assert None not in {dict(s.accelerator.fixed).get("technology") for s in specs}
    assert len(seeds.supernets) == 2
