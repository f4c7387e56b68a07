"""Shared fixtures.

``model_backend``: runs a test once per backend of the two-stage cost model
(:data:`jaqmoo.mapping.model.BACKENDS`: the compiled ``numba`` one and the ``numpy``
reference), by setting the default backend that :func:`jaqmoo.mapping.model.resolve_backend`
picks. A module opts in with ``pytestmark = pytest.mark.usefixtures("model_backend")``; calls
that name a backend explicitly are unaffected. Module-scoped, so hypothesis tests can use it.
"""

from __future__ import annotations

import os

import pytest

from jaqmoo.errors import JaqmooError
from jaqmoo.mapping.model import BACKENDS, resolve_backend


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
