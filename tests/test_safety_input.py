"""Issue 28: strict YAML and numbers everywhere (specs, sweep specs, bits files, Timeloop YAML,
ERT, CLI): alias bombs, NaN/inf/negative/huge values and long values give short, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from spec_helpers import with_key

from jaqmoo.cli import main
from jaqmoo.errors import JaqmooError
from jaqmoo.experiment.spec import load_spec, parse_spec
from jaqmoo.hardware.ert import load_tables
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.strict import MAX_SHOWN, count_values, load_yaml_text, number, shown
from jaqmoo.sweep.spec import expand_sweep, load_sweep_spec
from jaqmoo.timeloop.inputs import load_timeloop_input

REFERENCE = Path(__file__).parent / "data" / "timeloop_reference"
BASE = {"model": {"name": "simple_cnn"}, "dataset": {"name": "digits"},
        "accelerator": {"template": "eyeriss", "search": ["pe_x"]}, "objectives": ["accuracy", "energy"],
        "search": {"population": 8, "generations": 2}}

BOMB = "\n".join(["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
                 + [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)])


def _with(path: str, value) -> dict:
    return with_key(BASE, path, value)


def _short(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert len(msg) < 1200, msg[:300]
    return msg


@pytest.mark.parametrize("where", ["spec", "bits-file", "sweep"])
def test_alias_bomb_is_refused_quickly(tmp_path, where):
    assert len(BOMB) < 600
    path = tmp_path / "bomb.yaml"
    if where == "spec":
        path.write_text(yaml.safe_dump(BASE) + BOMB)
        with pytest.raises(JaqmooError, match="expands to more than") as err:
            load_spec(path)
    elif where == "bits-file":
        path.write_text("default: 8\n" + BOMB)
        with pytest.raises(JaqmooError, match="expands to more than") as err:
            QuantPolicy.load(path, ["conv1"])
    else:
        path.write_text("base: {}\n" + BOMB)
        with pytest.raises(JaqmooError, match="expands to more than") as err:
            load_sweep_spec(path)
    _short(err)


def test_self_referencing_yaml_and_huge_values_are_shown_short():
    with pytest.raises(JaqmooError, match="refers to itself"):
        load_yaml_text("a: &x [1, *x]", "f.yaml")
    assert count_values(yaml.safe_load("a: &x [1, 2]\nb: [*x, *x]")) == 13  # {}, 2 keys, [1, 2], [[1, 2], [1, 2]]
    with pytest.raises(JaqmooError) as err:
        parse_spec(_with("model", "x" * 1_000_000))
    assert len(str(err.value)) < 2 * MAX_SHOWN + 200
    assert len(shown(list(range(10**6)))) <= MAX_SHOWN


@pytest.mark.parametrize("path,value", [
    ("constraints.max_accuracy_drop", float("nan")), ("constraints.min_accuracy", float("inf")),
    ("constraints.max_area_mm2", float("nan")), ("model.width_mult", float("nan")),
    ("search.haq_budgets", [0.5, float("nan")]), ("accuracy.train", {"lr": float("nan")}),
    ("accuracy.train", {"epochs": float("inf")}), ("search.population", 10**12),
    ("search.generations", 10**15), ("seed", -1), ("search.batch_size", 2**62), ("accuracy.val_images", 10**30),
])
def test_bad_numbers_in_a_spec_name_the_field(path, value):
    from jaqmoo.experiment.accuracy import check_train_options

    with pytest.raises(JaqmooError) as err:
        check_train_options(parse_spec(_with(path, value)))
    assert path.split(".")[-1] in _short(err)


def test_nan_drop_never_makes_every_point_feasible(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(BASE) + "constraints: {max_accuracy_drop: .nan}\n")
    with pytest.raises(JaqmooError, match=r"max_accuracy_drop must be a finite number"):
        load_spec(path)


def test_huge_population_is_refused_before_allocating(tmp_path):
    with pytest.raises(JaqmooError, match=r"search.population: 1000000000000 is out of range"):
        parse_spec(_with("search.population", 10**12))


def _ert_with(tmp_path: Path, energy) -> Path:
    src = REFERENCE / "model-conv1d-1level" / "timeloop-model.ERT.yaml"
    data = yaml.safe_load(src.read_text())
    data["ERT"]["tables"][0]["actions"][0]["energy"] = energy
    out = tmp_path / "ert.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


@pytest.mark.parametrize("energy", [float("nan"), float("inf"), -0.5, "lots", True, [1]])
def test_bad_ert_energies_are_errors_not_zero(tmp_path, energy):
    with pytest.raises(JaqmooError, match="energy") as err:
        load_tables(_ert_with(tmp_path, energy))
    _short(err)
    load_tables(_ert_with(tmp_path, 1.5))  # a real value loads


@pytest.mark.parametrize("field,value", [("depth", float("nan")), ("width", float("inf")), ("depth", -4),
                                         ("width", "wide"), ("depth", 1e30)])
def test_bad_architecture_numbers(tmp_path, field, value):
    folder = tmp_path / "tl"
    shutil.copytree(REFERENCE / "mapper-eyeriss-like-conv", folder)
    data = yaml.safe_load((folder / "parsed-processed-input.yaml").read_text())

    def patch(node) -> bool:
        if isinstance(node, dict):
            attrs = node.get("attributes")
            if isinstance(attrs, dict) and field in attrs:
                attrs[field] = value
                return True
            return any(patch(v) for v in node.values())
        if isinstance(node, list):
            return any(patch(v) for v in node)
        return False

    assert patch(data["architecture"])
    (folder / "parsed-processed-input.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(JaqmooError, match=field) as err:
        load_timeloop_input(folder)
    _short(err)


@pytest.mark.parametrize("dim,value", [("K", float("nan")), ("C", 1e22), ("R", -3), ("P", 0), ("Q", "big")])
def test_bad_problem_dimensions(tmp_path, dim, value):
    folder = tmp_path / "tl"
    shutil.copytree(REFERENCE / "mapper-eyeriss-like-conv", folder)
    data = yaml.safe_load((folder / "parsed-processed-input.yaml").read_text())
    instance = data["problem"]["instance"]
    key = dim if dim in instance else {"K": "M"}.get(dim, dim)
    instance[key] = value
    (folder / "parsed-processed-input.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(JaqmooError) as err:
        load_timeloop_input(folder)
    _short(err)


@pytest.mark.parametrize("argv,option", [
    (["cost", "--model", "simple_cnn", "--num-classes", "-5"], "--num-classes"),
    (["cost", "--model", "simple_cnn", "--budget", "nan"], "--budget"),
    (["supernet", "train", "--model", "simple_cnn", "--lr", "nan"], "--lr"),
    (["supernet", "train", "--model", "simple_cnn", "--width-mult", "inf"], "--width-mult"),
    (["run", "spec.yaml", "--pop", "1e30"], "--pop"),
    (["sweep", "s.yaml", "--workers", "-2"], "--workers"),
])
def test_cli_numbers_are_checked(argv, option, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


def test_sweep_name_follows_the_run_rule(tmp_path):
    data = {"name": "../../x", "base": yaml.safe_load(yaml.safe_dump(BASE)), "axes": {"seed": [0, 1]}}
    with pytest.raises(JaqmooError, match="would put the run outside runs/"):
        expand_sweep(data, source="s.yaml")
    with pytest.raises(JaqmooError, match="climbs out"):
        expand_sweep({**data, "name": "ok", "output": {"dir": "runs/../../elsewhere"}}, source="s.yaml")
    plan = expand_sweep(data, source="s.yaml", out_dir=tmp_path / "explicit")  # an explicit --out is taken as given
    assert plan.output_dir == str(tmp_path / "explicit")
    assert all("/" not in r.name and r.name not in (".", "..") for r in plan.runs)


def test_number_reader_rules():
    assert number("1e-9", "x", lo=0, text=True) == 1e-9
    assert number(8.0, "x", integer=True) == 8 and isinstance(number(8.0, "x", integer=True), int)
    for bad in (float("nan"), float("-inf"), True, None, "1e400", [1]):
        with pytest.raises(JaqmooError, match="^x "):
            number(bad, "x", text=True)
    with pytest.raises(JaqmooError, match="too large"):
        number(2**50, "x", integer=True)
    with pytest.raises(JaqmooError, match="out of range"):
        number(0, "x", lo=0, lo_open=True)
