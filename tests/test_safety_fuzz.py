"""Fuzzing what users hand jaqmoo (issue 28): hypothesis mutates valid experiment specs, sweep
specs, ``--bits-file`` files, Timeloop folders (architecture, problem, ERT) and ``stats.txt``
files -- wrong types, NaN/inf, huge and negative numbers, missing keys, aliases, long strings --
and every outcome must be success or a :class:`JaqmooError` with a short message, never another
exception. Derandomized with a fixed number of examples, so CI runs the same cases every time
(well under a minute together)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaqmoo.errors import JaqmooError
from jaqmoo.experiment.accuracy import check_train_options
from jaqmoo.experiment.spec import load_spec
from jaqmoo.quant.policy import QuantPolicy
from jaqmoo.sweep.spec import load_sweep_spec
from jaqmoo.timeloop.inputs import load_timeloop_input
from jaqmoo.timeloop.stats import parse_stats

REFERENCE = Path(__file__).parent / "data" / "timeloop_reference"
FUZZ = settings(max_examples=60, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SPEC = {"name": "fz", "model": {"name": "simple_cnn", "width_mult": 1.0}, "dataset": {"name": "digits"},
        "accelerator": {"template": "eyeriss", "fixed": {"technology": 45}, "search": ["pe_x"]},
        "quantization": {"weight_bits": [2, 4, 8], "act_bits": [4, 8], "fixed_layers": {"first": "8/8"}},
        "accuracy": {"estimator": "predictor", "train": {"epochs": 1, "lr": 0.002, "batch_size": 64},
                     "val_images": 100, "predictor_samples": 16},
        "objectives": ["accuracy", "energy"], "constraints": {"max_accuracy_drop": 0.05},
        "search": {"population": 8, "generations": 2, "seed_bits": [8, 4], "haq_budgets": [0.5, 0.7]},
        "mapping": {"mode": "inner", "metric": "energy", "candidates": 8}, "seed": 3}
BITS = {"default": "8/8", "layers": {"conv1": 4, "conv2": "4/8", "fc": "float"}}
LAYERS = ["conv1", "conv2", "fc"]

NASTY = st.sampled_from([float("nan"), float("inf"), float("-inf"), -1, 0, 10**30, -(10**30), 2**63, 1e308,
                         True, None, "", "x" * 5000, "nan", "1e999", [], {}, [1, [2, [3]]], {"a": {"b": 1}},
                         "../../x", "\x00", "<!--<script>", "=1+1"])


@st.composite
def mutations(draw: Any) -> list[tuple[int, str, Any]]:
    """A few (path choice, operation, value) edits; paths are picked among the document's own nodes."""
    n = draw(st.integers(1, 3))
    return [(draw(st.integers(0, 10**6)), draw(st.sampled_from(["set", "delete", "alias", "wrap"])), draw(NASTY))
            for _ in range(n)]


def _nodes(doc: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _nodes(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _nodes(v, path + (i,))
    return out


def _mutate(doc: Any, edits: list[tuple[int, str, Any]]) -> Any:
    doc = yaml.safe_load(yaml.safe_dump(doc))
    for pick, op, value in edits:
        paths = [p for p in _nodes(doc) if p]
        if not paths:
            return value
        path = paths[pick % len(paths)]
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        last = path[-1]
        if op == "delete":
            del parent[last]
        elif op == "alias":  # a shared node: yaml.safe_dump writes it as an anchor and aliases
            shared = [parent[last]] * 4
            parent[last] = [shared, shared, shared]
        elif op == "wrap":
            parent[last] = [parent[last]]
        else:
            parent[last] = value
    return doc


def _dump(doc: Any) -> str:
    try:
        return yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:  # e.g. a NUL in a string: write it as a plain quoted scalar instead
        return yaml.safe_dump(yaml.safe_load(yaml.safe_dump(doc).replace("\x00", "")))


def _only_jaqmoo_errors(call: Any) -> None:
    try:
        call()
    except JaqmooError as exc:
        assert len(str(exc)) < 5000, str(exc)[:300]


@FUZZ
@given(mutations())
def test_mutated_experiment_specs(edits):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        path.write_text(_dump(_mutate(SPEC, edits)))

        def load() -> None:
            spec = load_spec(path)
            check_train_options(spec)

        _only_jaqmoo_errors(load)


@FUZZ
@given(mutations())
def test_mutated_sweep_specs(edits):
    sweep = {"name": "fz", "base": SPEC, "axes": {"seed": [0, 1], "search.population": [8, 12]},
             "grid": {"rows": "seed"}, "accuracy_tolerance": 0.01}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.yaml"
        path.write_text(_dump(_mutate(sweep, edits)))
        _only_jaqmoo_errors(lambda: load_sweep_spec(path, out_dir=Path(tmp) / "out"))


@FUZZ
@given(mutations())
def test_mutated_bits_files(edits):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bits.yaml"
        path.write_text(_dump(_mutate(BITS, edits)))
        _only_jaqmoo_errors(lambda: QuantPolicy.load(path, LAYERS))


@FUZZ
@given(st.sampled_from(["parsed-processed-input.yaml", "timeloop-mapper.ERT.yaml", "timeloop-mapper.ART_summary.yaml"]),
       mutations())
def test_mutated_timeloop_folders(name, edits):
    src = REFERENCE / "mapper-eyeriss-like-conv"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "tl"
        shutil.copytree(src, folder)
        doc = yaml.safe_load((src / name).read_text())
        (folder / name).write_text(_dump(_mutate(doc, edits)))
        _only_jaqmoo_errors(lambda: load_timeloop_input(folder))


@FUZZ
@given(st.integers(0, 10**6), st.sampled_from(["nan", "inf", "-1", "1e999", "99999999999999999999999", "x", ""]))
def test_mutated_stats_files(pick, value):
    import re

    text = (REFERENCE / "mapper-eyeriss-like-conv" / "timeloop-mapper.stats.txt").read_text()
    numbers = list(re.finditer(r"\d+(\.\d+)?", text))
    m = numbers[pick % len(numbers)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "timeloop-mapper.stats.txt"
        path.write_text(text[:m.start()] + value + text[m.end():])
        _only_jaqmoo_errors(lambda: parse_stats(path))
