"""Fixtures shared by the test modules (one definition each).

* ``one_torch_thread`` -- torch on one thread for a module (small ops on a shared machine run
  fastest and steadiest so); use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``;
* ``fake_accuracy`` -- ``jaqmoo run`` without supernet training: the accuracy side is
  :func:`search_fakes.fake_accuracy_setup`; returns a dict counting the calls (``calls["n"]``);
* ``eyeriss`` -- the Eyeriss template's default ``Accelerator``;
* ``fake_run_dir`` -- a finished fake-evaluator search run folder (4 generations of 12), shared
  read-only by the report tests; copy it before changing it;
* ``model_backend`` -- runs a test once per backend of the two-stage cost model
  (:data:`jaqmoo.mapping.model.BACKENDS`: the compiled ``numba`` one and the ``numpy``
  reference), by setting the default backend that :func:`jaqmoo.mapping.model.resolve_backend`
  picks. A module opts in with ``pytestmark = pytest.mark.usefixtures("model_backend")``; calls
  that name a backend explicitly are unaffected. Module-scoped, so hypothesis tests can use it.
"""

from __future__ import annotations

import os

import pytest
import torch
from search_fakes import FAKE_RUN_SETTINGS, fake_accuracy_setup, run_fake_search

import jaqmoo.experiment.accuracy as accuracy_module
from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.templates import load_accelerator_spec
from jaqmoo.mapping.model import BACKENDS, resolve_backend


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


@pytest.fixture(scope="module", params=BACKENDS)
def model_backend(request):
    """The model backend every default ``analyze``/``cost`` call of the module uses."""
    backend = request.param
    if backend == "numba":
        try:
            resolve_backend("numba")
        except JaqmooError as exc:  # numba missing: the numpy run still covers the model
            pytest.skip(str(exc))
    saved = os.environ.get("JAQMOO_NO_NUMBA")
    os.environ["JAQMOO_NO_NUMBA"] = "1" if backend == "numpy" else "0"
    assert resolve_backend() == backend
    try:
        yield backend
    finally:
        if saved is None:
            os.environ.pop("JAQMOO_NO_NUMBA", None)
        else:
            os.environ["JAQMOO_NO_NUMBA"] = saved
