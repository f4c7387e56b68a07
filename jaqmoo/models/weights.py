"""Float weights from a file: a torchvision weights file or a user's ``state_dict``, strictly matched.

:func:`read_state_dict` loads the file with ``torch.load(weights_only=True)`` (plain tensors only:
a file read back never runs code) and accepts a bare ``state_dict`` (what ``torch.save(
model.state_dict(), path)`` and torchvision's downloaded ``*.pth`` files hold), or one under a
``state_dict`` / ``model`` key, with DistributedDataParallel's ``module.`` prefixes removed.

:func:`check_state_dict` compares it with a model's own keys and shapes and raises a
:class:`~jaqmoo.errors.JaqmooError` with a readable diff (missing, unexpected, shape-mismatched
keys) when they differ in any way; a classifier trained for another number of classes, or a stem
changed by the small-input adaptation, is named as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jaqmoo.errors import JaqmooError

SHOWN = 8  # keys listed per group of the diff


def read_state_dict(path: str | Path, what: str = "model.checkpoint") -> dict[str, Any]:
    """The tensors of a weights file (see the module docstring)."""
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise JaqmooError(f"{what} {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or code-carrying files
        raise JaqmooError(f"{what} {path}: not a file of plain tensors torch.load(weights_only=True) can read "
                          f"({type(exc).__name__}: {str(exc)[:200]}); save it with "
                          "torch.save(model.state_dict(), path)") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise JaqmooError(f"{what} {path}: expected a state_dict (a mapping of parameter names to tensors), "
                          f"got {type(state).__name__}; save it with torch.save(model.state_dict(), path)")
    if all(str(k).startswith("module.") for k in state):
        state = {str(k)[len("module."):]: v for k, v in state.items()}
    return {str(k): v for k, v in state.items()}


def _shape(t: Any) -> str:
    return "x".join(str(s) for s in t.shape) or "scalar"


def state_dict_diff(expected: Mapping[str, Any], given: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """``(missing, unexpected, mismatched)``: keys the model has and the file lacks, keys the file has
    and the model lacks, and ``"key: file AxB, model CxD"`` for equal keys of different shapes."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    mismatched = [f"{k}: file {_shape(given[k])}, model {_shape(expected[k])}" for k in expected
                  if k in given and tuple(given[k].shape) != tuple(expected[k].shape)]
    return missing, unexpected, mismatched


def _listed(title: str, keys: list[str]) -> str:
    more = f"\n    ... and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return f"\n  {title} ({len(keys)}):\n    " + "\n    ".join(keys[:SHOWN]) + more


def check_state_dict(model: Any, state: Mapping[str, Any], source: str, model_name: str) -> None:
    """Raise a readable diff unless ``state`` has exactly ``model``'s keys, each with its shape.

    ``model`` is the float network the weights are for (the names of its parameters and buffers)."""
    from torch import nn

    expected = model.state_dict()
    missing, unexpected, mismatched = state_dict_diff(expected, state)
    if not (missing or unexpected or mismatched):
        return
    hints = []
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    head = linears[-1] if linears else None
    if head is not None and f"{head}.weight" in state and f"{head}.weight" in expected \
            and state[f"{head}.weight"].shape[0] != expected[f"{head}.weight"].shape[0]:
        hints.append(f"its classifier {head!r} has {state[f'{head}.weight'].shape[0]} outputs, the model "
                     f"{expected[f'{head}.weight'].shape[0]} (the dataset's classes): these weights were trained for "
                     "another number of classes; train on such a dataset or save a state_dict for this one")
    stem = linears[0] if linears else None
    if stem is not None and any(m.startswith(f"{stem}.weight") for m in mismatched):
        hints.append(f"its first layer {stem!r} differs in shape: the model takes other input channels, or its stem "
                     "was adapted to small images (input below 96 pixels: stride 1, 3x3 kernel)")
    diff = "".join(_listed(title, keys) for title, keys in (("missing from the file", missing),
                                                             ("not in the model", unexpected),
                                                             ("shapes differ", mismatched)) if keys)
    raise JaqmooError(f"{source}: these weights do not fit {model_name} (keys must match exactly):{diff}"
                      + "".join(f"\n  note: {h}" for h in hints))


__all__ = ["check_state_dict", "read_state_dict", "state_dict_diff"]
