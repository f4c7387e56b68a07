"""Fixtures shared by the test modules (one definition each).

* ``one_torch_thread`` -- torch on one thread for a module (small ops on a shared machine run
  fastest and steadiest so); use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``;
* ``fake_accuracy`` -- ``jaqmoo run`` without supernet training: the accuracy side is
  :func:`search_fakes.fake_accuracy_setup`; returns a dict counting the calls (``calls["n"]``);
* ``eyeriss`` -- the Eyeriss template's default ``Accelerator``;
* ``fake_run_dir`` -- a finished fake-evaluator search run folder (4 generations of 12), shared
  read-only by the report tests; copy it before changing it.
"""

from __future__ import annotations

import pytest
import torch
from search_fakes import FAKE_RUN_SETTINGS, fake_accuracy_setup, run_fake_search

import jaqmoo.experiment.accuracy as accuracy_module
from jaqmoo.hardware.templates import load_accelerator_spec


@pytest.fixture(scope="module")
def one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def fake_accuracy(monkeypatch):
    calls = {"n": 0}

    def counting(*args, **kwargs):
        calls["n"] += 1
        return fake_accuracy_setup(*args, **kwargs)

    monkeypatch.setattr(accuracy_module, "obtain_accuracy", counting)
    return calls


@pytest.fixture(scope="session")
def eyeriss():
    return load_accelerator_spec("eyeriss")


@pytest.fixture(scope="session")
def fake_run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("fake") / "run"
    run_fake_search(path, FAKE_RUN_SETTINGS)
    return path
