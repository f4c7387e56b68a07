"""The spec path of architecture search (issue 12): ``model.elastic`` -> jaqmoo run -> run folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jaqmoo.data import FASHION_MNIST_DIR
from jaqmoo.errors import JaqmooError
from jaqmoo.experiment.spec import load_spec, parse_spec
from jaqmoo.models.elastic_space import ArchSpec, subnet_workload

PROBLEMS = Path(__file__).resolve().parent.parent / "problems"
JAQ = PROBLEMS / "jaq-mobilenetv2-eyeriss.yaml"

#: the same path as problems/jaq-mobilenetv2-eyeriss.yaml, on digits, tiny (a supernet in seconds)
TINY = {
    "name": "jaq-tiny",
    "seed": 0,
    "model": {"name": "mobilenet_v2", "width_mult": 0.25, "elastic": {"depth": [1, 2], "expand": [3, 6], "kernel": [3, 5]}},
    "dataset": {"name": "digits"},
    "accelerator": {"template": "eyeriss"},
    "quantization": {"weight_bits": [4, 8], "act_bits": [4, 8], "fixed_layers": {"first": "8/8", "last": "8/8"}},
    "accuracy": {"estimator": "supernet", "val_images": 60,
                 "train": {"float_epochs": 1, "epochs": 1, "batch_size": 64, "n_random": 1, "max_train": 192}},
    "objectives": ["accuracy", "energy", "memory"],
    "search": {"algorithm": "nsga2", "population": 6, "generations": 2, "seed_bits": [8, 4]},
}


def _tiny(tmp: Path, **changes) -> dict:
    spec = json.loads(json.dumps(TINY))
    spec["accuracy"]["checkpoint"] = str(tmp / "elastic.pt")
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = spec
        for p in parents:
            node = node[p]
        node[last] = value
    return spec


# ----------------------------------------------------------------------------- spec validation


def test_jaq_spec_parses_with_its_elastic_space():
    spec = load_spec(JAQ)
    assert spec.model.elastic_dict == {"depth": [2, 3, 4], "expand": [3, 4, 6], "kernel": [3, 5]}
    assert spec.to_dict()["model"]["elastic"] == spec.model.elastic_dict
    assert spec.objectives == ("accuracy", "energy", "memory")
    # the commented variant: latency as a fourth objective
    text = JAQ.read_text().replace("objectives: [accuracy, energy, memory]\n", "")
    text = text.replace("# objectives: [accuracy, energy, memory, latency]", "objectives: [accuracy, energy, memory, latency]")
    import yaml

    assert parse_spec(yaml.safe_load(text), "variant.yaml").objectives[-1] == "latency"


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_jaq_spec_prepares_without_training(tmp_path):
    """Everything `jaqmoo run` checks before training: hardware, fixed layers, paths, train options,
    the joint genome over the largest sub-network's layers."""
    from jaqmoo.experiment import prepare_experiment
    from jaqmoo.experiment.accuracy import expected_identity, supernet_path
    from jaqmoo.search.arch_genes import ArchGenomeSpace

    prep = prepare_experiment(JAQ, out=tmp_path / "run")
    space = prep.search_space()
    assert isinstance(space, ArchGenomeSpace) and space.n_arch_genes == 7 + 2 * prep.elastic.n_blocks
    assert [layer.name for layer in prep.workload.layers] == list(prep.layer_names) == list(space.layer_names)
    assert prep.fixed_layers == {0: (8, 8), len(prep.layer_names) - 1: (8, 8)}
    ident = expected_identity(prep.spec, prep.splits)
    assert ident["elastic"]["kernel"] == [3, 5] and ident["elastic"]["width_mult"] == 0.25
    assert "mobilenet_v2-elastic-fashion-mnist-" in supernet_path(prep.spec, prep.splits, tmp_path / "x.pt").name


@pytest.mark.parametrize("model, extra, message", [
    ({"name": "resnet18", "elastic": {"depth": [2, 3]}}, {}, "model 'resnet18' has no elastic"),
    ({"name": "mobilenet_v2", "elastic": {"depth": [2, 5]}}, {}, r"model.elastic.depth\[1\]: 5 is out of range"),
    ({"name": "mobilenet_v2", "elastic": {"kernel": [3, 4]}}, {}, "model.elastic.kernel: .* even kernel"),
    ({"name": "mobilenet_v2", "elastic": {"expnd": [3]}}, {}, "did you mean 'expand'"),
    ({"name": "mobilenet_v2", "elastic": {"depth": 3}}, {}, "model.elastic.depth: expected a non-empty list"),
    ({"name": "mobilenet_v2", "elastic": {"expand": [4, 4]}}, {}, "lists a choice twice"),
    ({"name": "mobilenet_v2", "elastic": [3]}, {}, "model.elastic: expected a mapping"),
    ({"name": "mobilenet_v2", "checkpoint": "w.pt", "elastic": {}}, {}, "model.checkpoint cannot start an elastic"),
    ({"name": "mobilenet_v2", "elastic": {}}, {"mapping": {"mode": "outer"}}, "mapping.mode: 'outer'"),
    ({"name": "mobilenet_v2", "elastic": {}}, {"search": {"algorithm": "haq", "population": 8}}, "search.algorithm: haq"),
    ({"name": "mobilenet_v2", "elastic": {}}, {"search": {"population": 5}}, "smaller than the 6 seeds"),
])
def test_bad_elastic_specs_name_the_field(model, extra, message):
    data = {"model": model, "dataset": {"name": "digits"}, "accelerator": {"template": "eyeriss"},
            "search": {"population": 8}, **extra}
    with pytest.raises(JaqmooError, match=message):
        parse_spec(data, "t.yaml")


def test_elastic_defaults_and_fixed_specs_unchanged():
    spec = parse_spec({"model": {"name": "mobilenet_v2", "elastic": {}}, "dataset": {"name": "digits"},
                       "accelerator": {"template": "eyeriss"}}, "t.yaml")
    assert spec.model.elastic_dict == {"depth": [2, 3, 4], "expand": [3, 4, 6], "kernel": [3, 5, 7]}
    fixed = parse_spec({"model": {"name": "mobilenet_v2"}, "dataset": {"name": "digits"},
                        "accelerator": {"template": "eyeriss"}}, "t.yaml")
    assert fixed.model.elastic is None and fixed.to_dict()["model"]["elastic"] is None


# ----------------------------------------------------------------------------- end to end (digits)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny elastic run (supernet trained into accuracy.checkpoint, 2 generations)."""
    from jaqmoo.experiment import run_experiment

    tmp = tmp_path_factory.mktemp("elastic")
    result = run_experiment(_tiny(tmp), out=tmp / "run", progress=False, plots=False)
    return tmp, result


def test_tiny_elastic_run_writes_architecture_columns(tiny_run):
    from jaqmoo.experiment.elastic import elastic_space

    tmp, result = tiny_run
    run = result.run
    front = pd.read_csv(tmp / "run" / "front.csv")
    assert len(front) == len(run.front) > 0
    space = elastic_space(parse_spec(_tiny(tmp)))
    n_st, n_b = len(space.stage_blocks), space.n_blocks
    assert {f"depth_s{i}" for i in range(n_st)} | {f"expand_b{j}" for j in range(n_b)} | {"macs", "params"} <= set(front)
    names = run.layer_names
    for _, row in front.iterrows():
        arch = ArchSpec(tuple(int(row[f"depth_s{i}"]) for i in range(n_st)),
                        tuple(int(row[f"expand_b{j}"]) for j in range(n_b)),
                        tuple(int(row[f"kernel_b{j}"]) for j in range(n_b)))
        wl = subnet_workload(space, arch, 10, 1, 8)
        assert row["macs"] == wl.macs  # the front's MACs are the decoded sub-network's
        running = {layer.name for layer in wl.layers}
        # bits columns exactly for the layers that run (the others are not part of the point)
        assert {n for n in names if pd.notna(row[f"w.{n}"])} == running
        assert row["architecture"].startswith("depth " + "-".join(str(d) for d in arch.depth))
    meta = json.loads((tmp / "run" / "meta.json").read_text())
    assert meta["space"]["elastic"]["expand"] == [3, 6] and meta["gene_names"][0] == "arch.depth.s0"
    assert [b["label"] for b in meta["baselines"]][:2] == ["uniform 8-bit, largest arch", "uniform 8-bit, smallest arch"]
    base = run.baselines
    assert base.loc[0, "macs"] > base.loc[1, "macs"]  # largest vs smallest architecture
    # the search saw different architectures, and their costs differ with them
    ev = run.evaluations
    assert ev["macs"].nunique() > 2 and np.corrcoef(ev["macs"], ev["weight_memory_bits"])[0, 1] > 0


def test_tiny_elastic_run_report_shows_architecture(tiny_run):
    """`jaqmoo report` (the cost breakdown rebuilt from meta.json) recomputes every front point's
    and baseline's sub-network cost to the stored energy and carries its architecture."""
    from jaqmoo.reporting.html import write_report

    tmp, result = tiny_run
    (tmp / "run" / "report.html").unlink()
    html = Path(write_report(tmp / "run")).read_text()
    n_points = len(result.run.front) + len(result.run.baselines)
    assert html.count('"check":{"ok":true') == n_points and '"check":{"ok":false' not in html
    assert html.count('"architecture":{"depth":') == n_points and "architectureText" in html
    row = result.run.front.iloc[0]
    depth = ",".join(str(int(row[f"depth_s{i}"])) for i in range(7))
    assert f'"architecture":{{"depth":[{depth}]' in html


def test_tiny_elastic_run_resumes_and_refuses_another_space(tiny_run):
    from jaqmoo.experiment import run_experiment

    tmp, result = tiny_run
    copy = tmp / "resumed"
    shutil.copytree(tmp / "run", copy)
    n = len(result.run.evaluations)
    more = run_experiment(_tiny(tmp), out=copy, resume=True, generations=3, progress=False, plots=False)
    assert len(more.run.evaluations) == n + TINY["search"]["population"]
    assert more.seconds.get("supernet_load") is not None  # the checkpoint is reused, not retrained
    other = _tiny(tmp)
    other["model"]["elastic"]["kernel"] = [3]
    with pytest.raises(JaqmooError, match=r"model.elastic.kernel: \[3, 5\] -> \[3\]"):
        run_experiment(other, out=copy, resume=True, progress=False, plots=False)


def test_elastic_checkpoint_for_another_space_is_a_clear_error(tiny_run):
    from jaqmoo.experiment import run_experiment

    tmp, _ = tiny_run
    other = _tiny(tmp)
    other["model"]["elastic"]["expand"] = [3, 4, 6]
    with pytest.raises(JaqmooError, match=r"elastic.expand: \[3, 6\] -> \[3, 4, 6\]"):
        run_experiment(other, out=tmp / "other", progress=False, plots=False)
    fixed = _tiny(tmp)
    fixed["model"].pop("elastic")
    with pytest.raises(JaqmooError, match="elastic: .* -> None"):
        run_experiment(fixed, out=tmp / "fixed", progress=False, plots=False)
    assert not (tmp / "other" / "evaluations.jsonl").exists()


def test_tiny_elastic_run_with_predictor_rescores_the_front(tiny_run):
    """estimator: predictor -> an ArchPredictor (bits + architecture features) inside the loop,
    the elastic supernet re-scores the front; max_accuracy_drop is taken from the largest
    architecture at uniform 8 bits."""
    from jaqmoo.experiment import run_experiment

    tmp, _ = tiny_run
    spec = _tiny(tmp)
    spec["accuracy"].update(estimator="predictor", predictor_samples=10)
    spec["constraints"] = {"max_accuracy_drop": 0.5}
    spec["search"].update(population=4, generations=1, seed_bits=[8])
    result = run_experiment(spec, out=tmp / "pred", progress=False, plots=False)
    meta = result.run.meta
    assert meta["accuracy_estimator"] == "predictor" and set(meta["predictor_fit_error"]) == {"cv_mae", "cv_kendall_tau"}
    assert 0.0 <= meta["uniform8_accuracy"] <= 1.0
    assert meta["constraints"]["min_accuracy"] == pytest.approx(meta["uniform8_accuracy"] - 0.5)
    assert "supernet_train" not in result.seconds  # the fixture's checkpoint, loaded
    rescored = json.loads((tmp / "pred" / "rescored.json").read_text())
    assert rescored and result.run.front["accuracy_rescored"].notna().all()
    assert all(0.0 <= v <= 1.0 for v in rescored.values())


def test_notebook_shows_the_architecture_of_the_picked_point(tiny_run, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    tmp, result = tiny_run
    notebook = Path(__file__).resolve().parent.parent / "notebooks" / "pareto_exploration.ipynb"
    monkeypatch.setenv("JAQMOO_RUN_DIR", str(tmp / "run"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "depth per stage: [" in text and "kernel per block: [" in text and "uniform 8-bit (pJ)" in text


def test_supernet_eval_reads_an_elastic_checkpoint(tiny_run, capsys):
    from jaqmoo.cli import main
    from jaqmoo.quant.checkpoints import load_supernet
    from jaqmoo.quant.elastic import ElasticSupernet

    tmp, _ = tiny_run
    net = load_supernet(tmp / "elastic.pt", expect_model="mobilenet_v2")
    assert isinstance(net, ElasticSupernet) and net.arch == net.space.largest()
    with pytest.raises(JaqmooError, match="not 'mobilenet_v1'"):
        load_supernet(tmp / "elastic.pt", expect_model="mobilenet_v1")
    assert main(["supernet", "eval", "--checkpoint", str(tmp / "elastic.pt"), "--bits", "8/8", "--images", "60"]) == 0
    out = capsys.readouterr().out
    assert "evaluating its largest sub-network" in out and "top-1" in out
