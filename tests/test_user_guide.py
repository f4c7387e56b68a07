"""What a new user meets first: every CLI option explained, outputs with a column dictionary,
a meaningless (near-chance) accuracy flagged everywhere it shows, references generated from
the code and kept in the README / docs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from jaqmoo import __version__
from jaqmoo.cli import build_parser, main
from jaqmoo.commands import default_threads, resolve_threads
from jaqmoo.commands.reference import SPEC_KEYS, spec_example, spec_markdown, spec_reference_rows
from jaqmoo.errors import JaqmooError
from jaqmoo.experiment.spec import parse_spec
from jaqmoo.progress import LineProgress, progress_bar
from jaqmoo.quant.sanity import accuracy_warnings, float_phase_accuracy
from jaqmoo.report import load_run
from jaqmoo.reporting.columns import columns_markdown, describe_column, unknown_columns

ROOT = Path(__file__).resolve().parents[1]


def _leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """``(command words, parser)`` of every runnable command (sub-commands of sub-commands too)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for name, child in subs[0].choices.items():
        yield from _leaf_parsers(child, path + (name,))


def test_every_option_of_every_command_has_help_and_every_command_a_description(capsys):
    leaves = list(_leaf_parsers(build_parser()))
    assert len(leaves) >= 12
    missing = []
    for words, parser in leaves:
        if not parser.description:
            missing.append(f"jaqmoo {' '.join(words)}: no description")
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"jaqmoo {' '.join(words)} {'/'.join(action.option_strings) or action.dest}: no help")
        with pytest.raises(SystemExit) as exc:  # and --help itself runs
            main([*words, "--help"])
        assert exc.value.code == 0
        assert "usage: jaqmoo" in capsys.readouterr().out
    assert not missing, "\n".join(missing)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"jaqmoo {__version__}"


def test_threads_default_is_the_idle_cores_shared_among_processes(monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert default_threads(1) == 16 and default_threads(4) == 4
    monkeypatch.setattr(os, "getloadavg", lambda: (11.6, 0.0, 0.0))  # a busy machine
    assert default_threads(1) == 4 and default_threads(2) == 2 and default_threads(8) == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (40.0, 0.0, 0.0))
    assert default_threads(1) == 1


def test_one_threads_default_for_every_command():
    threads = {}
    for words, parser in _leaf_parsers(build_parser()):
        for action in parser._actions:
            if "--threads" in action.option_strings:
                threads[" ".join(words)] = (action.default, action.help)
    assert {"run", "sweep", "supernet train", "supernet eval"} <= set(threads)
    assert len(set(threads.values())) == 1  # same default, same explanation
    assert resolve_threads(None) == default_threads(1) >= 1
    assert resolve_threads(None, processes=10**6) == 1 and resolve_threads(3, processes=2) == 3
    with pytest.raises(JaqmooError, match="--threads must be >= 1"):
        resolve_threads(0)


def test_report_open_without_a_browser_prints_the_path(tmp_path, monkeypatch, capsys):
    import webbrowser

    import jaqmoo.reporting.html as html_module

    monkeypatch.setattr(html_module, "write_report", lambda target, out, **kw: tmp_path / "report.html")
    monkeypatch.setattr(webbrowser, "open", lambda uri: False)  # what it returns when no browser is found
    assert main(["report", str(tmp_path), "--open"]) == 0
    out = capsys.readouterr().out
    assert "no web browser found" in out and (tmp_path / "report.html").resolve().as_uri() in out


def test_progress_prints_one_line_per_step_when_not_a_terminal(capsys):
    bar = progress_bar(total=3, desc="search", unit="gen", lines=True)  # pytest's stderr is no terminal
    assert isinstance(bar, LineProgress)
    for g in range(3):
        bar.set_postfix({"hv": f"{0.1 * g:.2f}"})
        bar.update(1)
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("search: 3/3 gen (hv=0.20)")
    quiet = progress_bar(range(5), desc="batches")  # inner bars: silent off a terminal
    assert list(quiet) == list(range(5)) and capsys.readouterr().err == ""


# ------------------------------------------------------------------ references from the code


def test_spec_reference_covers_every_key_and_the_example_is_a_valid_spec(tmp_path):
    rows = spec_reference_rows()
    keys = [r["key"] for r in rows]
    assert not [r["key"] for r in rows if r["meaning"] == "UNDOCUMENTED"], "add the key to SPEC_KEYS"
    assert not set(SPEC_KEYS) - set(keys), "SPEC_KEYS names keys the spec no longer has"
    assert {"model.name", "accuracy.train.float_epochs", "search.population", "output.dir"} <= set(keys)
    spec = parse_spec(yaml.safe_load(spec_example()), source="example")
    assert spec.search.population == 32 and spec.accuracy.val_images == 500  # the dataclass defaults
    assert "| `accuracy.val_images` | int | `500` | images |" in spec_markdown()


def test_readme_spec_reference_and_docs_columns_are_the_generated_ones():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- spec-reference:start -->\n", "<!-- spec-reference:end -->"
    assert start in readme and end in readme
    assert readme.split(start)[1].split(end)[0] == spec_markdown(), \
        "README's spec reference is stale: regenerate it with `jaqmoo spec --markdown`"
    assert (ROOT / "docs" / "columns.md").read_text(encoding="utf-8") == columns_markdown(), \
        "docs/columns.md is stale: `jaqmoo columns --markdown > docs/columns.md`"
    assert len(readme.splitlines()) <= 320
    # the README's test command is the one .ci/run runs
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    command = ci[ci.index("# The README's test command (keep these two in sync):") + 1]
    assert f"```\n{command}\n```" in readme


def test_column_dictionary_matches_names_and_families():
    assert describe_column("energy_pj").unit == "pJ"
    assert describe_column("w.features.0").name == "w.<layer>"
    assert describe_column("energy_pj.shared_glb").name == "energy_pj.<level>"
    assert describe_column("best_energy").name == "best_<objective>"
    assert unknown_columns(["accuracy", "model", "no_such_column"], axes=("model",)) == ["no_such_column"]


def test_accuracy_warnings_rules():
    assert accuracy_warnings(0.19, 10) and not accuracy_warnings(0.21, 10)  # chance 10 % + 10 points
    assert accuracy_warnings(None, 10) == []
    gap = accuracy_warnings(0.80, 10, float_accuracy=0.86)
    assert len(gap) == 1 and "0.800 is 0.060 below the float network's 0.860" in gap[0]
    assert accuracy_warnings(0.82, 10, float_accuracy=0.86) == []
    history = [{"phase": "float", "acc_float": 0.5}, {"phase": "float", "acc_float": 0.7},
               {"phase": "quantized", "acc_max_bits": 0.6}]
    assert float_phase_accuracy(history) == 0.7 and float_phase_accuracy([{"phase": "quantized"}]) is None


# ------------------------------------------------------------------ a near-chance run, end to end

NEAR_CHANCE = {
    "name": "near-chance",
    "model": {"name": "simple_cnn"},
    "dataset": {"name": "digits"},
    "accelerator": {"template": "eyeriss"},
    "quantization": {"weight_bits": [4, 8], "act_bits": [4, 8]},
    # no training at all: a randomly initialised network is at chance
    "accuracy": {"estimator": "supernet", "train": {"epochs": 0, "float_epochs": 0}, "val_images": 100},
    "objectives": ["accuracy", "energy"],
    "search": {"population": 4, "generations": 1, "seed_bits": [8, 4], "batch_size": 4},
}


@pytest.fixture(scope="module")
def near_chance_sweep(tmp_path_factory):
    """A one-run sweep folder whose run trained no supernet (its run is a real `jaqmoo run`)."""
    from jaqmoo.sweep.outputs import write_outputs
    from jaqmoo.sweep.spec import expand_sweep
    from jaqmoo.sweep.tasks import run_task

    tmp = tmp_path_factory.mktemp("near-chance")
    base = yaml.safe_load(yaml.safe_dump(NEAR_CHANCE))
    base["accuracy"]["checkpoint"] = str(tmp / "untrained.pt")
    plan = expand_sweep({"name": "nc", "base": base, "axes": {"seed": [0]}}, out_dir=tmp / "sweep")
    sweep_dir = Path(plan.output_dir)
    sweep_dir.mkdir(parents=True)
    (sweep_dir / "sweep.json").write_text(json.dumps(plan.to_dict(), default=str))
    run = plan.runs[0]
    record = run_task(run.name, run.spec, "test", str(sweep_dir / "runs" / run.name), threads=1)
    assert record["status"] == "done", record.get("traceback")
    write_outputs(sweep_dir, plan.to_dict())
    return sweep_dir, sweep_dir / "runs" / run.name, base


def test_near_chance_run_is_flagged_in_meta_summary_and_report(near_chance_sweep):
    from jaqmoo.reporting.html import write_report

    sweep_dir, run_dir, _ = near_chance_sweep
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["accuracy_warnings"] and "of chance (0.100 on 10 classes" in meta["accuracy_warnings"][0]
    assert meta["supernet_uniform8_accuracy"] < 0.2
    summary = pd.read_csv(sweep_dir / "summary.csv")
    assert "within 0.10 of chance" in summary.loc[0, "warning"]
    for target in (run_dir, sweep_dir):
        page = write_report(target, recompute=False).read_text(encoding="utf-8")
        assert 'id="accuracy-warnings"' in page and "within 0.10 of chance" in page


def test_every_output_column_of_a_real_run_is_in_the_column_dictionary(near_chance_sweep):
    sweep_dir, run_dir, _ = near_chance_sweep
    for name in ("front.csv", "evaluations.csv", "history.csv"):
        cols = list(pd.read_csv(run_dir / name).columns)
        assert not unknown_columns(cols), f"{name}: add these to jaqmoo/reporting/columns.py"
    for name in ("summary.csv", "fronts.csv"):
        cols = list(pd.read_csv(sweep_dir / name).columns)
        assert not unknown_columns(cols, axes=("seed",)), f"{name}: add these to jaqmoo/reporting/columns.py"


def test_strict_stops_a_near_chance_run_with_a_clear_message(near_chance_sweep, tmp_path, capsys):
    _, _, base = near_chance_sweep  # its supernet checkpoint is already there
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(base))
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "--strict", "--quiet", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert "--strict: the accuracy set-up gives meaningless results" in err and "within 0.10 of chance" in err
    assert "energy source:" in err  # the accelerator and its energies are said at start
    assert not (tmp_path / "run" / "evaluations.jsonl").exists()  # nothing was searched


def test_export_point_bits_file_round_trip_through_cost_and_supernet_eval(near_chance_sweep, tmp_path, capsys):
    """`jaqmoo export RUN --point K --bits-file F`, then the two commands its header names, reproduce
    the point: accuracy and memory exactly, energy within the mapper's search gap (the run's
    BatchTile tile sets against a fresh per-layer search)."""
    import shlex

    _, run_dir, _ = near_chance_sweep
    front = pd.read_csv(run_dir / "front.csv")
    assert list(front["point"]) == list(range(len(front)))
    k = len(front) - 1
    bits = tmp_path / "point.yaml"
    assert main(["export", str(run_dir), "--point", str(k), "--bits-file", str(bits)]) == 0
    text = bits.read_text()
    data = yaml.safe_load(text)
    row = front.iloc[k]
    assert data["point"]["point"] == k and data["point"]["energy_pj"] == pytest.approx(row["energy_pj"])
    assert {n: (v["w"], v["a"]) for n, v in data["layers"].items()} == {
        c[2:]: (int(row[c]), int(row["a." + c[2:]])) for c in front.columns if c.startswith("w.")}
    commands = {line.split(":", 1)[0][2:]: shlex.split(line.split(":", 1)[1]) for line in text.splitlines()
                if line.startswith(("# costs:", "# accuracy:"))}
    capsys.readouterr()
    assert main([*commands["accuracy"][1:], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == row["accuracy"]  # bit for bit
    table = tmp_path / "cost.csv"
    assert main([*commands["costs"][1:], "--quiet", "--csv", str(table)]) == 0
    cost = pd.read_csv(table)
    packed_bits = (cost["weight_kib_packed"].sum() + (cost["input_kib_packed"] + cost["output_kib_packed"]).max()) * 8192
    assert packed_bits == pytest.approx(row["memory_bits"], rel=1e-9)
    assert cost["energy_uj"].sum() * 1e6 == pytest.approx(row["energy_pj"], rel=0.02)
    # cycles are not compared: the per-layer search minimises energy, and mappings of nearly equal
    # energy can take very different cycle counts (here 7,440 in the run vs 10,512 from `jaqmoo cost`)
    with pytest.raises(JaqmooError, match="has front points 0.."):
        load_run(run_dir).point_file(len(front))


@pytest.mark.parametrize("algorithm", ["random", "bits-nsga2"])
def test_baseline_searchers_print_one_line_per_generation_off_a_terminal(tmp_path, capsys, algorithm):
    from search_fakes import FakeEvaluator, fake_space

    from jaqmoo.search.problem import Constraints
    from jaqmoo.search.session import SearchSettings, search_in_directory

    settings = SearchSettings(objectives=("accuracy", "energy", "memory"), constraints=Constraints(min_accuracy=0.5),
                              algorithm=algorithm, population=6, generations=3, seed=1, batch_size=3)
    search_in_directory(tmp_path / "run", algorithm, fake_space(), FakeEvaluator(), settings, progress=True)
    err = capsys.readouterr().err
    assert "\r" not in err  # no bar frames in a log file
    lines = [line for line in err.splitlines() if line.startswith("search:")]
    assert [line.split(" gen ")[0] for line in lines] == ["search: 1/3", "search: 2/3", "search: 3/3"]
    evals = [int(line.split("evals=")[1].split(",")[0]) for line in lines]
    # random: 6 per generation; bits-nsga2 starts from Klhufek et al.'s uniform ladder alone
    assert evals == sorted(evals) and evals[-1] == (18 if algorithm == "random" else evals[0] + 12)


def test_report_uses_the_breakdown_the_run_stored_and_never_a_stale_one(near_chance_sweep, tmp_path, monkeypatch):
    """`jaqmoo run` stores its front points' per-layer breakdown keyed by the run's content; the
    report reads it instead of rebuilding the model and the mapper, unless the run changed."""
    import shutil

    from jaqmoo.reporting.breakdown import CostBreakdown
    from jaqmoo.reporting.breakdown_store import BREAKDOWN_JSON, content_key, read_breakdown
    from jaqmoo.reporting.html import build_payload

    _, run_dir, _ = near_chance_sweep
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    stored = json.loads((run / BREAKDOWN_JSON).read_text())
    assert stored["key"] == content_key(run) and read_breakdown(run) is not None
    rebuilt = []
    real = CostBreakdown.from_meta

    def counting(meta, evaluations):
        rebuilt.append(1)
        return real(meta, evaluations)

    monkeypatch.setattr(CostBreakdown, "from_meta", staticmethod(counting))
    entry = build_payload(run)["runs"][0]
    assert not rebuilt  # the stored breakdown was used
    details = entry["details"]
    assert details and all(d["check"]["ok"] for d in details) and "energy_by_tensor" in details[0]["layers"][0]
    meta = json.loads((run / "meta.json").read_text())
    (run / "meta.json").write_text(json.dumps(meta | {"note": "edited"}))  # the run changed: stale
    assert read_breakdown(run) is None
    again = build_payload(run)["runs"][0]["details"]
    assert rebuilt == [1] and [d["check"]["ok"] for d in again] == [d["check"]["ok"] for d in details]


def test_sweep_strict_fails_a_near_chance_run_and_exits_non_zero(near_chance_sweep, tmp_path, capsys):
    _, _, base = near_chance_sweep  # its supernet checkpoint is already there
    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"name": "nc-strict", "base": base, "axes": {"seed": [0]}}))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "sweep"), "--strict", "--workers", "1",
                 "--threads", "1", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "1 run(s) failed" in out
    summary = pd.read_csv(tmp_path / "sweep" / "summary.csv")
    assert summary.loc[0, "status"] == "failed" and "--strict" in summary.loc[0, "error"]
    assert "within 0.10 of chance" in summary.loc[0, "error"]


def test_export_point_policy_file_round_trip_reproduces_the_point_exactly(near_chance_sweep, tmp_path, capsys):
    """`jaqmoo export RUN --point K --policy-file F` then the `jaqmoo cost --policy-file F` its header
    names: each layer costed with its own mapping gives the point's energy, cycles and memory (no
    mapper gap), and the same file is a bits file for `jaqmoo supernet eval`."""
    import shlex

    _, run_dir, _ = near_chance_sweep
    front = pd.read_csv(run_dir / "front.csv")
    for k in sorted({0, len(front) - 1}):
        policy = tmp_path / f"policy{k}.yaml"
        assert main(["export", str(run_dir), "--point", str(k), "--policy-file", str(policy)]) == 0
        text = policy.read_text()
        data = yaml.safe_load(text)
        row = front.iloc[k]
        assert data["point"]["point"] == k and all(v["mapping"] for v in data["layers"].values())
        assert {t["type"] for v in data["layers"].values() for t in v["mapping"]} >= {"temporal", "bypass"}
        commands = {line.split(":", 1)[0][2:]: shlex.split(line.split(":", 1)[1]) for line in text.splitlines()
                    if line.startswith(("# costs:", "# accuracy:"))}
        assert "--policy-file" in commands["costs"]
        table = tmp_path / f"cost{k}.csv"
        capsys.readouterr()
        assert main([*commands["costs"][1:], "--quiet", "--csv", str(table)]) == 0
        assert "no mapper search" in capsys.readouterr().out
        cost = pd.read_csv(table)
        assert cost["energy_uj"].sum() * 1e6 == pytest.approx(row["energy_pj"], rel=1e-9)
        assert cost["cycles"].sum() == row["latency_cycles"]
        packed = (cost["weight_kib_packed"].sum() + (cost["input_kib_packed"] + cost["output_kib_packed"]).max()) * 8192
        assert packed == pytest.approx(row["memory_bits"], rel=1e-9)
    assert main([*commands["accuracy"][1:], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == row["accuracy"]
    # a damaged mapping is an error naming the layer, never a traceback
    first = next(iter(data["layers"]))
    data["layers"][first]["mapping"][0]["factors"] = "K=7"
    policy.write_text(yaml.safe_dump(data))
    assert main([*commands["costs"][1:], "--quiet"]) == 2
    assert f"layers.{first}.mapping" in capsys.readouterr().err


def test_spec_schema_is_generated_from_the_reader_and_agrees_with_it(capsys):
    """`jaqmoo spec --schema`: a valid JSON Schema that accepts every shipped spec and the example,
    and rejects what the reader rejects (its ranges and choices come from the reader's checks)."""
    jsonschema = pytest.importorskip("jsonschema")
    assert main(["spec", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    keys = {r["key"] for r in spec_reference_rows()} - {"accelerator.search_all"}
    props = schema["properties"]

    def has(key):
        node = props
        for part in key.split(".")[:-1]:
            node = node[part]["properties"]
        return key.split(".")[-1] in node
    assert all(has(k) for k in keys)
    specs = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "problems").glob("*.yaml"))]
    for data in [yaml.safe_load(spec_example())] + [d for d in specs if "base" not in d and "axes" not in d]:
        assert not list(validator.iter_errors(data))
    assert props["accuracy"]["properties"]["val_images"]["minimum"] == 10  # the reader's own bound
    base = yaml.safe_load(spec_example())
    bad = [("accuracy", "val_images", 5), ("search", "population", 3), ("mapping", "mode", "middle"),
           ("model", "width_mult", 0.0), ("constraints", "min_accuracy", 1.5), ("search", "no_such_key", 1)]
    for section, key, value in bad:
        data = yaml.safe_load(yaml.safe_dump(base))
        data[section][key] = value
        assert list(validator.iter_errors(data)), (section, key, value)
        with pytest.raises(JaqmooError, match=key):  # the reader refuses it too, naming the field
            parse_spec(data, source="t")


def test_cost_columns_carry_their_units_and_old_sweep_files_open_under_the_new_names(near_chance_sweep, tmp_path,
                                                                                     capsys):
    import shutil

    from jaqmoo.reporting.columns import unit_name
    from jaqmoo.sweep.outputs import load_sweep

    sweep_dir, run_dir, _ = near_chance_sweep
    cols = list(pd.read_csv(run_dir / "front.csv").columns)
    assert {"energy_pj", "latency_cycles", "latency_s", "edp_pj_cycles", "memory_bits", "area_mm2"} <= set(cols)
    assert not {"cycles", "edp"} & set(cols) and not [c for c in cols if c.startswith("energy.")]
    costs = [c for c in cols if c.startswith(("energy", "latency", "edp", "memory", "weight_mem", "activation_mem",
                                              "area", "accuracy", "hw."))]
    assert all(describe_column(c).unit not in ("", "-") for c in costs)  # every cost names its unit
    # a sweep folder written before the rename: its fronts.csv has the old names
    old = tmp_path / "old"
    shutil.copytree(sweep_dir, old)
    fronts = pd.read_csv(old / "fronts.csv")
    back = {unit_name(o): o for o in ("cycles", "edp", *(f"energy.{c[10:]}" for c in fronts if c.startswith("energy_pj.")))}
    fronts.rename(columns=back).to_csv(old / "fronts.csv", index=False)
    assert "cycles" in pd.read_csv(old / "fronts.csv")
    loaded = load_sweep(old).fronts
    assert {"latency_cycles", "edp_pj_cycles"} <= set(loaded) and "cycles" not in loaded
    assert main(["plot", str(old)]) == 0 and main(["export", str(old), "--csv", str(tmp_path / "f.csv")]) == 0
    assert main(["report", str(old), "--no-recompute"]) == 0
    assert "latency_cycles" in pd.read_csv(tmp_path / "f.csv")
