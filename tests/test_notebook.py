"""The Pareto-exploration notebook runs top to bottom on a small run."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from search_fakes import FakeEvaluator, fake_space

from jaqmoo.search.problem import Constraints
from jaqmoo.search.session import SearchSettings, search_in_directory

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "pareto_exploration.ipynb"


def test_notebook_executes(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    settings = SearchSettings(objectives=("accuracy", "energy", "memory"), constraints=Constraints(min_accuracy=0.8),
                              population=8, generations=3, seed=0)
    search_in_directory(run_dir, "tiny", fake_space(), FakeEvaluator(), settings, progress=False)
    monkeypatch.setenv("JAQMOO_RUN_DIR", str(run_dir))
    figures = tmp_path / "figures"
    monkeypatch.setenv("JAQMOO_FIGURES_DIR", str(figures))
    before = sorted(p.name for p in run_dir.iterdir())
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    except Exception as exc:  # pragma: no cover - the message is what matters
        pytest.fail(f"notebook failed: {exc}")
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "tiny:" in text and "weight_bits" in text and "picked point (pJ)" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    # the notebook's figures go to its own folder; the run folder is only read
    assert {"front.png", "hypervolume.png"} <= {p.name for p in figures.iterdir()}
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_notebook_run_dir_is_a_tagged_parameter():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "run_dir =" in tagged[0].source and "figures_dir =" in tagged[0].source
